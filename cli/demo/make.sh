#!/usr/bin/env bash
# Makes the demo's sample stream (committed; embedded in the `vodvault` binary): one 320x180
# variant with audio, 3 segments of 2 s, AES-128 with key rotation (segments 0-1: key A with the
# implicit IV of RFC 8216 §5.2; segment 2: key B with an explicit IV). Needs ffmpeg, openssl,
# xxd.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf media && mkdir -p media
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
KA=76766c745f64656d6f5f6b65795f6121   # "vvlt_demo_key_a!"
KB=76766c745f64656d6f5f6b65795f6221   # "vvlt_demo_key_b!"
printf '%s' "$KA" | xxd -r -p > media/a.key
printf '%s' "$KB" | xxd -r -p > media/b.key
ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=320x180:rate=25:duration=6" \
  -f lavfi -i "sine=frequency=523:duration=6" -c:v libx264 -preset veryfast -profile:v baseline -pix_fmt yuv420p \
  -g 25 -keyint_min 25 -sc_threshold 0 -b:v 220k -maxrate 220k -bufsize 220k -c:a aac -b:a 48k \
  -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_filename "$tmp/seg-%d.ts" "$tmp/plain.m3u8"
n=$(ls "$tmp"/seg-*.ts | wc -l)
{
  printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n'
  printf '#EXT-X-KEY:METHOD=AES-128,URI="a.key"\n'
  for i in $(seq 0 $((n - 1))); do
    d=$(grep -A1 -m $((i + 1)) '#EXTINF' "$tmp/plain.m3u8" | grep '#EXTINF' | tail -1)
    if [ "$i" -eq 2 ]; then
      printf '#EXT-X-KEY:METHOD=AES-128,URI="b.key",IV=0x000000000000000000000000000000b2\n'
      openssl aes-128-cbc -K "$KB" -iv 000000000000000000000000000000b2 -in "$tmp/seg-$i.ts" -out "media/seg-$i.ts"
    else
      openssl aes-128-cbc -K "$KA" -iv "$(printf '%032x' "$i")" -in "$tmp/seg-$i.ts" -out "media/seg-$i.ts"
    fi
    printf '%s\nseg-%d.ts\n' "$d" "$i"
  done
  printf '#EXT-X-ENDLIST\n'
} > media/stream.m3u8
printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=320000,AVERAGE-BANDWIDTH=280000,RESOLUTION=320x180,CODECS="avc1.42c00d,mp4a.40.2"\nstream.m3u8\n' > media/master.m3u8
ls -l media; du -sh media
