"""rosbag2 processing: read image topics from a bag (MCAP or sqlite3), run the contact node on every image, write
an MCAP bag with the inputs and every output topic (``interactvlm bag``). Output bags are written to a temporary
path next to the destination and moved into place only once complete."""
