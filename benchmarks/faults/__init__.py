"""The fault soak: SIGKILL trials per worker kind, broker and Slack outages, an alert
storm and hostile input, each compared with an uninterrupted run; `make faults`."""
