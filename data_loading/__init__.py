"""Reading data: what --data names (files, folders of shards, hub datasets), the published schemas, images checked
up front, the seeded order, and the demo's digit-sum task (--data synthetic). docs/data.md."""
