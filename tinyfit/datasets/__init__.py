"""The data files shipped with tinyfit (README.md: what they are, their licence)."""
