"""Help articles as data: `<slug>.<lang>.md` files, read by `hub.helpbot.catalog`."""
