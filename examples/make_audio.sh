#!/usr/bin/env bash
# Regenerates the example takes in examples/audio/ from the transcripts in
# examples/voices/*.yaml. Needs Debian's espeak-ng and sox (with mp3/ogg support):
#   apt-get install espeak-ng sox libsox-fmt-all
# The takes are committed, so nobody needs to run this to try voicectl.
set -euo pipefail
cd "$(dirname "$0")/audio"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

narrator="Welcome to the studio. This narrator voice reads the opening of every chapter, \
so it should sound calm, clear and warm. Today we record a short take of about fifteen \
seconds, which is what Coze recommends for a good clone."
guide="欢迎来到我们的语音工作室。这段录音用于克隆导游的声音，语速平稳，吐字清楚。\
请保持安静的环境，一个人说话，自然而有变化。"
host="Hola a todos y bienvenidos al programa. Soy la voz del presentador y hoy vamos a \
grabar una toma corta, clara y tranquila, de unos quince segundos, para clonar esta voz."

# English, WAV (16 kHz mono 16-bit PCM)
espeak-ng -v en-us -s 150 -w "$tmp/narrator.wav" "$narrator"
sox "$tmp/narrator.wav" -r 16000 -c 1 -b 16 narrator.wav gain -n -1
# Mandarin Chinese, MP3 (mono, 32 kbit/s)
espeak-ng -v cmn -s 185 -w "$tmp/guide.wav" "$guide"
sox "$tmp/guide.wav" -r 16000 -c 1 -C 32 guide.mp3 gain -n -1
# Spanish, Ogg Vorbis (mono)
espeak-ng -v es -s 150 -w "$tmp/host.wav" "$host"
sox "$tmp/host.wav" -r 16000 -c 1 -C 0 host.ogg gain -n -1

for f in narrator.wav guide.mp3 host.ogg; do
  printf '%-14s %8d bytes %6.2f s\n' "$f" "$(stat -c %s "$f")" "$(soxi -D "$f")"
done
