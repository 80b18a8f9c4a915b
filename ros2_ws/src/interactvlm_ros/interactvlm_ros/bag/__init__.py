"""rosbag2 processing: read image topics from a bag (MCAP or sqlite3; a truncated or damaged MCAP up to the damage),
run the contact node on every image, write an MCAP bag with the inputs and every output topic
(``interactvlm bag``). Output bags are written in an unfinished-run folder next to the destination, one chunk per
frame, and moved into place only once complete; a run that died can be resumed or recovered from that folder."""
