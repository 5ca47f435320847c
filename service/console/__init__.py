"""The operator's console: static files (HTML, CSS, one JavaScript module) served at
``/console`` by :mod:`service.api.console`. No build step and no third-party script: the
page talks to the same scoped API as any client."""
