"""mailhelper: a self-hosted e-mail assistant that helps you ask for help and give thanks."""

__version__ = "0.1.0"
