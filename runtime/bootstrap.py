"""offlinepack kernel bootstrap (placeholder until the kernel-runtime issue lands)."""
import sys

if __name__ == "__main__":
    sys.exit("bootstrap.py is not available in this build")
