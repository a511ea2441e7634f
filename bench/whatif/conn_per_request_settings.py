"""What-if settings for bench/run.py --what-if conn-per-request: frontdesk's own settings with
CONN_MAX_AGE=0, i.e. a new database connection for every request and every job.

NOT the shipped configuration: frontdesk/settings.py used conn_max_age=0 until commit f4e51c4
and uses 60 since. This shows what persistent connections are worth.
"""

from frontdesk.settings import *  # noqa: F403
from frontdesk.settings import DATABASES

DATABASES["default"]["CONN_MAX_AGE"] = 0
