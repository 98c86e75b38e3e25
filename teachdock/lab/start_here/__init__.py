"""Chapter 00, start here: the machine check (doctor), the first container and its checks."""
