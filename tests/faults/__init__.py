"""The fault campaign: the demo served for real while its store is cut, paused or killed.

``tcp_proxy`` is the network between the app and PostgreSQL or Redis, ``demo_process``
serves the demo under uvicorn in a child process, ``load`` drives simulated browsers and
checks every answer against what each browser knows of its own session, ``faults`` are
the outages, ``targets`` puts the demo on each store with its faults, and ``campaign``
runs one fault through its phases and counts. The short runs are
``test_fault_campaign.py``; ``scripts/fault_campaign.py`` runs the long ones.
"""
