"""Messages to people: the outbox, its delivery and the channels it delivers through."""
