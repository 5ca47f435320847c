"""Thin HTTP routers: they translate HTTP to calls on plain classes and back."""
