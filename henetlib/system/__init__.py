"""What every wing runs on: project folders, atomic writes and locks (``files``), the device, seeding and a
description of the machine (``runtime``), torchrun process groups (``distributed``) and the process's
in-memory caches (``caches``). Imports nothing else of henetlib."""
