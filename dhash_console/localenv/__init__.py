"""The bundled dhash reference service that the `local` environment runs."""
