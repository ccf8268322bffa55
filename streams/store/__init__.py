"""The read side: SQL tables projected from the incident topics, and queries over them."""
