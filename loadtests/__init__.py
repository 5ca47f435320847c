"""Load tests: scenarios, payloads from the model manifest, generators and pass/fail targets."""
