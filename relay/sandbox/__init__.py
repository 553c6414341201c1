"""The TimeBack sandbox: a local Partner API emulator on aiohttp (docs/partner-api.md#sandbox).

Same paths as the real API at its root, state in memory, faults on demand. Run it with
``relay sandbox`` or in-process::

    from relay.sandbox.server import serve, SandboxThread
    async with serve(SandboxConfig()) as base_url: ...      # in the current loop
    with SandboxThread(SandboxConfig()) as box: box.url     # in a thread (sync code, subprocesses)

Modules, one idea each:

- ``config``: SandboxConfig, clients (built-in ``sandbox-client`` and ``other-client``), presets;
- ``tokens`` / ``auth``: HS256 JWT-shaped tokens, the token endpoint, bearer and scope checks;
- ``schemas`` / ``store`` / ``rostering`` / ``filters``: the roster, ownership, the list grammar;
- ``events`` / ``journal`` / ``processing`` / ``ledger`` / ``xp``: intake (the relay's own
  ``relay.caliper.validate``), delayed processing, the XP ledger and its endpoint;
- ``faults``: seeded fault injection (middleware); ``inspect``: ``/sandbox/1.0``;
- ``app`` / ``server`` / ``cli``: wiring and running; ``testing``: a sync remote control;
  ``seed``: the records and XP event of the vendor guide's flow (``relay smoke`` uses them).

Nothing here imports the pipeline (no faust, no Kafka).
"""
