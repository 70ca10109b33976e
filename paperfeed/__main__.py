from .cli import run

# Guarded: the importer's parser process may be started with "spawn", which imports the
# main module again and must not run the command a second time.
if __name__ == "__main__":
    run()
