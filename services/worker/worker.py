"""The `worker` service: fetches a YAML document and prints what it holds."""

import os
import sys

import requests
import yaml


def main() -> int:
    url = os.environ.get("WORKER_URL")
    if not url:
        print("worker ready: requests", requests.__version__, "pyyaml", yaml.__version__)
        return 0
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    print(yaml.safe_load(response.text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
