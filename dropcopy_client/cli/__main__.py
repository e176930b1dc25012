"""``python -m dropcopy_client.cli``: the ``dropcopy`` command without the console script (tests, venvs)."""

from dropcopy_client.cli import main

if __name__ == "__main__":
    main(prog_name="dropcopy")
