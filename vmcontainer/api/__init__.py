"""The Docker Engine API façade: aiohttp routes over the engine, one module per
resource (DESIGN.md "Rooms": HTTP, Docker JSON shapes, stream framing; nothing of
QEMU or disks). ``server.make_app(engine)`` builds the application."""
