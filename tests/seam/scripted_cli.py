"""Run the `w2s` command line with the `scripted:` backend registered (the script comes from
$W2S_SCRIPT as JSON), so CLI tests can run the real commands in a subprocess."""

import seam_scripted  # noqa: F401  (registers the backend)

from w2s.cli import main

if __name__ == "__main__":
    main()
