"""The incident core: pure functions of (state, event, now) -> (state, effects)."""
