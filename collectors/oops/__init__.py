"""Kernel oops, panic and warning collector."""
