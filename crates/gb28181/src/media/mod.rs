//! Media: RTP (UDP, TCP with RFC 4571 framing), reordering, MPEG-PS demuxing.
