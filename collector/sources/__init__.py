"""Sources a shop already has: Snowplow trackers and signed webhooks (e-mail, shop and till, social, mapped).

Each provider has its own module; all of them hand Segment-shaped events to the one ingest path.
"""
