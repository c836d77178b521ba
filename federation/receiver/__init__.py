"""The receiving half of federation: transactions in (``PUT /send``), the checks every received
PDU goes through before the event pipeline, filling gaps in a room's DAG from the sending
server, and the registry of inbound EDU handlers. docs/federation-receiving.md describes it."""
