"""ComfyUI, the process and its HTTP and websocket API: the client, its events, the process owner."""
