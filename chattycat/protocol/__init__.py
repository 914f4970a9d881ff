"""Sans-IO protocol: the frame codec, typed frames and flood control. No sockets, no clocks."""
