"""teachdock: a small, real container engine for learning how Docker works.

The layers, from the kernel up (each imports only the ones below it):
kernel -> runtime -> image / network / volume -> daemon -> client -> lab.
See DESIGN.md in the repository for the map.
"""

__version__ = "0.1.0"
