"""The durable timer engine: one `timers` table, workers claiming due rows, sub-second wake-ups."""
