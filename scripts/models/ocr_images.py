"""Images of known text for the OCR (image-to-text) tests, drawn with Pillow.

Black text on white in Pillow's own TrueType font (Aileron Regular, which Pillow ships:
`ImageFont.load_default(size=...)`, nothing read from the system), at 40 px.

ocr/livepeer.png  one line: "Livepeer 2026"
ocr/two_lines.png two lines: "hello world" above "transcode 42"
ocr/blank.png     white, no text

Not "LIVEPEER 2026": PP-OCRv4's recogniser drops the space after a word in capitals at most sizes
("LIVEPEER2026"; rapidocr too, at the same detector size), while it reads the space after a word
in lower case reliably.
"""
import os
import sys

from PIL import Image, ImageDraw, ImageFont

SIZE = 40
MARGIN = 30
LINE_GAP = 30


def render(lines, path):
    font = ImageFont.load_default(size=SIZE)
    boxes = [font.getbbox(line) for line in lines]
    width = max(b[2] for b in boxes) + 2 * MARGIN
    height = len(lines) * SIZE + (len(lines) - 1) * LINE_GAP + 2 * MARGIN
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((MARGIN, MARGIN + i * (SIZE + LINE_GAP)), line, fill="black", font=font)
    image.save(path)


out = os.path.join(sys.argv[1], "ocr")
os.makedirs(out, exist_ok=True)
render(["Livepeer 2026"], f"{out}/livepeer.png")
render(["hello world", "transcode 42"], f"{out}/two_lines.png")
Image.new("RGB", (320, 120), "white").save(f"{out}/blank.png")
