"""The console in a browser: textual-serve runs one console process per browser session."""
