package pc

const com1 = 0x3F8

// serialInit sets COM1 to 115200 baud, 8N1, FIFOs on, interrupts off.
func serialInit() {
	outb(com1+1, 0x00)
	outb(com1+3, 0x80)
	outb(com1+0, 0x01)
	outb(com1+1, 0x00)
	outb(com1+3, 0x03)
	outb(com1+2, 0xC7)
	outb(com1+4, 0x03)
}

func serialPut(c byte) {
	for i := 0; i < 100000 && inb(com1+5)&0x20 == 0; i++ {
	}
	outb(com1, c)
}

func serialWrite(p []byte) {
	for _, c := range p {
		serialPut(c)
	}
}
