"""Reliability and security suite: faults at every offset, truncation, disconnects, slow
clients, load, hostile input and header/credential hygiene (see ``docs/reliability.md``)."""
