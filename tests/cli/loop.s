loop:
ja loop
