"""`python -m chattycat` runs the command line."""

from chattycat.cli import main

if __name__ == "__main__":
    main()
