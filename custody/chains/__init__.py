"""Chain adapters: the venue's view of each blockchain (reads, broadcasts, transaction builders)."""
