"""Casework: cases, visits and the records kept about them; below the call flow, above the shared base."""
