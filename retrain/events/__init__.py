"""Telling people and systems what happened: CloudEvents from state changes, an outbox, subscriptions, sinks.

`model` shapes the events, `outbox` writes them with the state change and hands them to the sender,
`subscriptions` and `deliveries` are the stored rows, `sinks` speak Standard Webhooks and Event Grid,
and `sender` is the queue-triggered function that fans events out and retries deliveries.
"""
