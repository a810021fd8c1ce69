"""Arcade Pay's cabinet agent: coin pulses from MQTT become coins in the emulator.

``protocol`` is the integration's own wire protocol module (a symlink in the repository,
a copy in wheels), so that the cabinet and Home Assistant cannot disagree about it.
"""

__version__ = "0.1.0"
