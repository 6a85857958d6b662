"""``python -m proxy.simulator --host --port --seed --preset``: run the simulator."""

from proxy.simulator.server import main

raise SystemExit(main())
