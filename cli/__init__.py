"""The gravuq command line (typer). Installed as the package ``gravuq_cli``; no science here."""
