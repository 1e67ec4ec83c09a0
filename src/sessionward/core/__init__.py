"""The sans-I/O core: every session decision, with no socket, event loop or clock of its own.

Policy (``config``), IDs, cookies, records, the session object, the engine and lifecycle,
client information, binding, the firewall, throttling arithmetic, events and errors. Nothing
here imports the I/O layer, a store client or a web framework (a test proves it).
"""
