"""Configuration, pure: flags over variables over pod facts, parsed once into a frozen
``Config``."""
