"""The web console: server-rendered pages over the API's queries and command path."""
