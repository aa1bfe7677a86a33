"""Pure rules: no I/O, no awaits, no SQL."""
