"""The notifier: delivers the `notifications` outbox and records receipts."""
