"""tests/monitoring: the monitoring configuration, and the platform watched by a real
Prometheus. Helpers live in monitoring_support.py beside this file."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
