"""Settings for every part of the project: one small module, read by tasks, tools and the stack."""

from config.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
