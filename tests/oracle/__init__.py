"""Independent references the engine is tested against (they import nothing from engine)."""
