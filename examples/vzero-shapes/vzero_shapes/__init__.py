"""An example vision-zero domain package: coloured shapes on a plain background (see `domain.py`)."""
